# fikit-top's model and screen (tools/fikit-top/view.cpp), from status documents made by hand.
if(TARGET fikit-top)
  find_package(nlohmann_json 3 REQUIRED)
  fikit_cc_test(top_view_test SRCS top_view_test.cpp ${CMAKE_SOURCE_DIR}/tools/fikit-top/view.cpp
    LIBS nlohmann_json::nlohmann_json)
  target_include_directories(top_view_test PRIVATE ${CMAKE_SOURCE_DIR}/tools/fikit-top)
endif()
